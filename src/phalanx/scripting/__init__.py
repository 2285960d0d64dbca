"""What user scripts touch: users, tasks, wait times, load shapes, and the script loader.

Map (each module owns one noun):

- :mod:`.wait_time` (pure): ``between``, ``constant``, ``constant_pacing``,
  ``constant_throughput``;
- :mod:`.task`: ``@task``, ``@tag``, the compiled and filtered task table;
- :mod:`.context`: ``UserContext``, shared by all users of a run;
- :mod:`.user`: ``User``, ``HttpUser``, host validation;
- :mod:`.taskset`: ``TaskSet``, ``SequentialTaskSet``;
- :mod:`.runloop`: the task loop shared by users and TaskSets;
- :mod:`.measure`: timing custom clients (``user.measure()``);
- :mod:`.reporting`: recording and logging exceptions from user code;
- :mod:`.shape`: ``LoadShape``;
- :mod:`.loader`: ``load_script`` and ``select_user_classes``.

The public names for scripts are re-exported by :mod:`phalanx`; the engine
imports the submodules directly. Importing this package imports nothing.
"""
