"""kg.cuda: the CUDA device. The CUDA build and its emulator arrive with the CUDA backend; until
then this module reports that no CUDA device is available and refuses CUDA tensors clearly."""


def is_available():
    return False


def is_emulated():
    return False


def device_count():
    return 0


def _no_cuda():
    return RuntimeError(
        "CUDA is not available: this build of kernelgrad has no CUDA backend yet "
        "(kg.cuda.is_available() is False)"
    )


def get_device_name(device=None):
    raise _no_cuda()


def synchronize(device=None):
    raise _no_cuda()


def _backend():
    raise _no_cuda()
