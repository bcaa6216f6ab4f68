"""Package data: example spec projects (``loopc init --example``) and the generated JSON Schema."""
