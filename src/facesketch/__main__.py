from facesketch.cli import main

main()
