"""Random number generators: counter-based (Philox), so one seed gives reproducible streams."""
import numpy as np

from ._device import as_device


class Generator:
    """`kg.Generator(device="cpu").manual_seed(seed)`, passed as `generator=` to random functions."""

    def __init__(self, device="cpu"):
        self.device = as_device(device)
        self.manual_seed(np.random.SeedSequence().entropy % (2**63))

    def manual_seed(self, seed):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"manual_seed: expected an int seed, got {type(seed).__name__}")
        self._seed = int(seed) % (2**64)
        self._np = np.random.Generator(np.random.Philox(key=self._seed))  # the CPU stream
        self._cuda_offset = 0  # the CUDA stream: Philox counters already used under this seed
        return self

    def initial_seed(self):
        return self._seed

    def seed(self):
        s = np.random.SeedSequence().entropy % (2**63)
        self.manual_seed(s)
        return s

    def get_state(self):
        return {"cpu": self._np.bit_generator.state, "seed": self._seed, "cuda_offset": self._cuda_offset}

    def set_state(self, state):
        if not isinstance(state, dict) or "cpu" not in state:
            raise TypeError("set_state: expected a state from get_state()")
        self._np.bit_generator.state = state["cpu"]
        self._seed, self._cuda_offset = int(state["seed"]), int(state["cuda_offset"])
        return self


default_generator = Generator()


def manual_seed(seed):
    """Seed the default generator (every device's stream derives from it)."""
    default_generator.manual_seed(seed)
    return default_generator


def initial_seed():
    return default_generator.initial_seed()


def _gen(generator):
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"generator: expected a kg.Generator, got {type(generator).__name__}")
    return generator
