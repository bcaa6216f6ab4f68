"""loopc runtime: runs one step of a compiled plan. Never imports loopc.compiler."""
