"""ClickHouse through clickhouse-connect: one DSN for embedded chDB and for servers."""
