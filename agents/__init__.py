"""Agents: PPO on stable-baselines3 with IMPALA CNN and maze networks."""
