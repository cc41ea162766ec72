-- Runs for ten minutes unless cancelled: the cancellation test watches it in pg_stat_activity.
select pg_sleep(600) is null as slept
