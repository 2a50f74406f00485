"""Config-driven experiments: schema, runner, sweeps and reports."""
