import time


def model(dbt, session):
    # The one slow node of the project: long enough that a whole chain fits beside it.
    time.sleep(4)
    return session.sql("select 1 as id")
