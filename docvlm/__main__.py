from docvlm.cli import main

main()
