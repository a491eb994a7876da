"""Producer ids for InitProducerId, never reused across restarts.

Ids are reserved in blocks: the end of the current block is made durable before any id in it is
handed out, so a crash can skip ids but never repeat one.
"""

import os
from pathlib import Path

BLOCK = 1000


class ProducerIdManager:
    def __init__(self, log_dir: Path):
        self.path = log_dir / "producer-ids"
        self.next_id = int(self.path.read_text()) if self.path.exists() else 0
        self.block_end = self.next_id

    def allocate(self) -> int:
        if self.next_id >= self.block_end:
            self.block_end = self.next_id + BLOCK
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                f.write(str(self.block_end))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        pid = self.next_id
        self.next_id += 1
        return pid
