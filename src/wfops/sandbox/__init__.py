"""The local sandbox: a real PostgreSQL 15 cluster with WeddingFlo's schema at the previous release."""
