"""Prints the YAML documents read from stdin as one JSON array (PyYAML's
safe loader: what CI systems and kubectl accept as YAML)."""
import json
import sys

import yaml

docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]
json.dump(docs, sys.stdout)
