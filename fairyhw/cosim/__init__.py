"""Whole models through the generated RTL: the system top and a memory in Verilator, the model's
linear layers run on it token by token, checked against the golden model (``fairyhw run``)."""
