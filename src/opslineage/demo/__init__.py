"""The demo: a simulated fleet (or replayed real telemetry) run through a real AIOps pipeline
whose every step is recorded with the SDK, so ``why`` has something worth explaining."""

from opslineage.demo.pipeline import MIN_HOURS, DemoConfig, DemoResult, run_demo

__all__ = ["MIN_HOURS", "DemoConfig", "DemoResult", "run_demo"]
