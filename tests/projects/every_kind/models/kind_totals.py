def model(dbt, session):
    dbt.config(materialized="table")
    events = dbt.ref("stg_events")
    return events.aggregate("kind, sum(amount) as total", "kind")
