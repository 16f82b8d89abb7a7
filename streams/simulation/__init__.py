"""The campaign simulator (no re-exports here, so `python -m streams.simulation.world` runs cleanly):

- world.py: `build_world(seed)` → a seeded geography and voter file with a known true support model
- campaign.py: `CampaignGenerator(world, seed, malformed_share, clock)` → an iterator of `SimEvent`s
- clock.py: `LiveClock` (events happen now) and `ReplayClock` (past days, daytime canvassing)
- malformed.py: malformed kinds and the reason code each must be rejected with
- truth.py: `compute_truth(events, geography)`, `write_truth` / `read_truth`: the independent yardstick
- producer.py: `produce(bootstrap, events, rate)` to Kafka; cli.py: `groundswell simulate`
"""
