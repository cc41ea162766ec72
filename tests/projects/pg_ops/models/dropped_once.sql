{{ config(pre_hook="select case when nextval('public.dbtt_fault_attempts') = 1 then pg_terminate_backend(pg_backend_pid()) end") }}
-- Fault injection: the first attempt's connection is terminated by the server
-- (SQLSTATE 57P01), a sequence remembers it outside any transaction, and the retry succeeds.
select 1 as id
