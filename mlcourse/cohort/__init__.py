"""Cohort workflow for instructors: roster, release, collect, sandboxed parallel autograding,
feedback without hidden tests, and an export with a status for every submission."""
