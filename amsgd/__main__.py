from amsgd.cli import console

console()
