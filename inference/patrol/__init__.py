"""Patrol: visit every camera at its policy's interval, analyse one frame per visit; watch mode
for cameras that need a continuous stream.

Public API (import from the modules; this package re-exports nothing, to keep imports acyclic)::

    from xueliang.inference.patrol.models import PatrolTarget, PatrolJob, Credentials
    from xueliang.inference.patrol.settings import AnalyticsSettings   # the `analytics:` block
    from xueliang.inference.patrol.scheduler import PatrolScheduler, TargetsUnavailable
    from xueliang.inference.pipeline import PatrolPipeline, SinkError
    from xueliang.inference.patrol.watch import WatchManager

    scheduler = PatrolScheduler(stores.jobs, camera_list, settings.analytics.scheduler)
    pipeline = PatrolPipeline(stores.jobs, source_factory, detector, publish, settings.analytics.pipeline,
                              quality=settings.analytics.quality, rules=settings.analytics.rules)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(scheduler.run()); tg.create_task(pipeline.run())
        ...  # on shutdown: scheduler.stop(); pipeline.stop()
"""
