"""Data sets by name, behind one interface.

`get_dataset(spec, split)` returns a `Dataset` whose `batches(batch_size, start_step, seed,
process_index, process_count)` yields float32 numpy batches, already preprocessed, of per-host size
batch_size // process_count. In-memory sets (toy, digits) make batch k a pure function of
(seed, k), so a resumed run sees exactly the batches an uninterrupted one would.
"""

# Importing the data set modules registers them (TF is imported lazily).
from score_sde.data import digits, image_folder, tfds_images, toy  # noqa: F401
from score_sde.data.base import DATASETS, Dataset, DataSpec, get_dataset  # noqa: F401
