"""What is searched: candidate ops, search spaces with their topology, genotypes, relaxations and the supernet."""
