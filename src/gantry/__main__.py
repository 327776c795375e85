from gantry.cli.main import main

main()
