"""Patrol: the scheduler that visits every camera at its policy's interval, watch mode for
cameras under continuous watch, and their records and settings."""
