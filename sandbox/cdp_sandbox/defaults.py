"""The world the local stack serves (`make run`): its seed, its size and the sandbox's port.

Apart from ``devserver`` so that the demo files (``cdp sandbox legacy-referrals``) describe the same world
without importing the local stack.
"""

SANDBOX_PORT = 8765
SANDBOX_SEED = 7
SANDBOX_LEARNERS = 2000
