from mnist_research.train import run

run()
