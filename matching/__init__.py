"""Matching: CVI eligibility, applicant eligibility, keyword and semantic search, and the ranker."""
