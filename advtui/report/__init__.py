"""The report: experiment tables from metrics files only (no torch, no models), beside the published figures."""
