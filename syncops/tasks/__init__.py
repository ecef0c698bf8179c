"""Celery tasks of syncops, one module per flow; imported here so autodiscovery finds them.

Tasks are thin (load ids, call one service). Name each task explicitly
(``name="syncops.tasks.<flow>_<action>"``) so CELERY_TASK_ROUTES sends it to its queue.
"""
import syncops.tasks.imports  # noqa: F401
from syncops.tasks import push  # noqa: F401
from syncops.tasks.webhooks import *  # noqa: F403
