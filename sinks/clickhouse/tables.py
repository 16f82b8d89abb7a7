"""Table definitions, each written once and rendered for a single node or a cluster.

Single node: MergeTree-family engines with `non_replicated_deduplication_window`.
Cluster: Replicated engines with `replicated_deduplication_window` on `<name>_local`,
a Distributed table `<name>` for reads, and ON CLUSTER on every statement.
Every table that an insert reaches, materialized-view targets included, carries a
deduplication window: that is what makes a retried insert token change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Topology:
    database: str
    cluster: str | None
    deduplication_window: int

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {self.cluster}" if self.cluster else ""

    def local_name(self, table: str) -> str:
        """Where inserts and materialized views write."""
        return f"{table}_local" if self.cluster else table

    def qualified(self, name: str) -> str:
        return f"{self.database}.{name}"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    order_by: str
    engine: str = "MergeTree"  # MergeTree, AggregatingMergeTree, ReplacingMergeTree(version), ...
    partition_by: str | None = None
    sharding_key: str = "rand()"
    distributed: bool = True
    extra_settings: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def render(self, topo: Topology) -> list[str]:
        local = topo.qualified(topo.local_name(self.name))
        columns = ",\n    ".join(f"{name} {ctype}" for name, ctype in self.columns)
        engine = self._engine(topo)
        parts = [f"CREATE TABLE IF NOT EXISTS {local}{topo.on_cluster}\n(\n    {columns}\n)\nENGINE = {engine}"]
        if self.partition_by:
            parts.append(f"PARTITION BY {self.partition_by}")
        parts.append(f"ORDER BY {self.order_by}")
        window = "replicated_deduplication_window" if topo.cluster else "non_replicated_deduplication_window"
        settings = [(window, str(topo.deduplication_window)), *self.extra_settings]
        parts.append("SETTINGS " + ", ".join(f"{k} = {v}" for k, v in settings))
        statements = ["\n".join(parts)]
        if topo.cluster and self.distributed:
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {topo.qualified(self.name)}{topo.on_cluster} AS {local}\n"
                f"ENGINE = Distributed({topo.cluster}, {topo.database}, {topo.local_name(self.name)}, "
                f"{self.sharding_key})"
            )
        return statements

    def _engine(self, topo: Topology) -> str:
        if not topo.cluster:
            return self.engine if "(" in self.engine else f"{self.engine}()"
        family, _, args = self.engine.partition("(")
        args = args.rstrip(")")
        path = f"'/clickhouse/tables/{{shard}}/{topo.database}/{topo.local_name(self.name)}', '{{replica}}'"
        return f"Replicated{family}({path}{', ' + args if args else ''})"


@dataclass(frozen=True)
class MaterializedView:
    name: str
    source: str
    target: str
    select: str  # uses {source} for the source table

    def render(self, topo: Topology) -> list[str]:
        source = topo.qualified(topo.local_name(self.source))
        target = topo.qualified(topo.local_name(self.target))
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {topo.qualified(self.name)}{topo.on_cluster} TO {target}\n"
            f"AS {self.select.format(source=source)}"
        ]


@dataclass(frozen=True)
class View:
    name: str
    select: str  # uses {db} for the database: reads go through Distributed tables on a cluster

    def render(self, topo: Topology) -> list[str]:
        return [
            f"CREATE OR REPLACE VIEW {topo.qualified(self.name)}{topo.on_cluster}\n"
            f"AS {self.select.format(db=topo.database)}"
        ]


@dataclass(frozen=True)
class Projection:
    """A second sort order kept inside each part of a table, which ClickHouse picks when it reads less.

    Aggregating and replacing engines refuse projections unless told how merges treat them: 'rebuild'
    rebuilds the projection of a merged part from the merged rows, so it never disagrees with them.
    """

    table: str
    name: str
    select: str

    def render(self, topo: Topology) -> list[str]:
        local = f"{topo.qualified(topo.local_name(self.table))}{topo.on_cluster}"
        return [
            f"ALTER TABLE {local} MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'",
            f"ALTER TABLE {local} ADD PROJECTION IF NOT EXISTS {self.name} ({self.select})",
            f"ALTER TABLE {local} MATERIALIZE PROJECTION {self.name}",  # the parts written before this
        ]
