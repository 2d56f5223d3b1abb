"""Alerts: rules over recorded signals, one evaluator across processes, notifications."""
