"""Offline replay: backtest, threshold sweep, baselines, policy comparison and its plots, the demo
scenario."""
