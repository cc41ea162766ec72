from dbt_temporal.cli.app import main

main()
