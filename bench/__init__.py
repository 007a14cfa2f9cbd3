"""Benchmarks run by ``make bench``; each prints its figures beside the reference they compare against."""
