"""NAS-Bench-201 ground truth: readers keyed by arch string, registered in TRUTH.

base (the entry, the arch-string check, the reader base), unpickle (the restricted unpickler),
results (the NB201/NATS ArchResults layout), nats / nb201 / table (the readers: fast-mode folder,
v1.1 .pth, our CSV), reader (`open_truth(path)`), export (the CLI command), proxy (the
analog-nasbench baseline, not chosen by a path).
"""
