"""Fabric tasks (`fab -l`): thin wrappers; the work is in plain functions the tests call."""
