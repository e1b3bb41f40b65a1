"""The chaos suite's harness: one deterministic stream and its dry run (`stream`), the
comparison of public outputs (`compare`), watching a run (`observe`), running a scenario
(`harness`) and the report table (`report`)."""
