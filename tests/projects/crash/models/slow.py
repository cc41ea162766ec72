import time


def model(dbt, session):
    dbt.ref("first")
    # Long enough for a test to kill or stop the worker while this node runs.
    time.sleep(8)
    return session.sql("select 2 as id")
