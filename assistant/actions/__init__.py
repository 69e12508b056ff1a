"""Actions the assistant takes in the company's systems: declared, decided by the model, approved, run, audited."""
