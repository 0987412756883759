"""runner.scan.ChunkReader: one chunk's log-probabilities to the rows the scan emits, and how many
reader threads a plan gets."""
import numpy as np

from runner.scan import ChunkReader, Spellings, log_softmax, readers_for

PIECES = [" the", " cat", " Cat", " cats", " dog", "s", " house", " 7"]


def _reader(frames, top_k=0):
    control = np.log(np.full((len(frames), len(PIECES)), 1 / len(PIECES), dtype=np.float32))
    starts = np.array([len(p) > 1 and p[0] == " " for p in PIECES])
    return ChunkReader(frames, control, starts, Spellings(PIECES), PIECES, top_k, np)


def test_rows_name_the_best_other_word_and_the_candidates_own_spellings():
    logits = np.array([[0, 5, 4, 3, 1, 9, 2, 0],      # candidate " cat": best other word-start is " house"
                       [0, 0, 0, 0, 8, 0, 1, 0]], dtype=np.float32)  # candidate " dog": repeats itself
    lp = log_softmax(logits).reshape(2, 1, len(PIECES))
    rec = _reader([{"name": "echo"}], top_k=2).read(40, [[1], [4]], lp)
    assert rec["type"] == "scan_chunk" and rec["start"] == 40
    cat, dog = rec["reads"]["echo"]
    # top token overall is "s" (not a word start); the best other word skips " cat", " Cat", " cats"
    assert cat[1] == 5 and cat[4] == 6
    assert abs(cat[3] - float(np.logaddexp.reduce(lp[0, 0, [1, 2, 3]]))) < 1e-3
    assert dog[1] == 4 and dog[4] == 6 and dog[3] > dog[5]
    assert [i for i, _ in cat[6]] == [5, 1]
    assert cat[0] > 0  # departs from the uniform control


def test_frames_are_read_apart():
    logits = np.zeros((2, len(PIECES)), dtype=np.float32)
    logits[1, 7] = 6  # the second frame continues with " 7"
    lp = log_softmax(logits).reshape(1, 2, len(PIECES))
    rec = _reader([{"name": "a"}, {"name": "b"}]).read(0, [[0]], lp)
    assert rec["reads"]["a"][0][0] < 1e-4 and rec["reads"]["b"][0][4] == 7


def test_reader_threads_follow_the_plan():
    assert readers_for({"n_gpu_layers": 0, "n_threads": 16}) == 1
    assert readers_for({"n_gpu_layers": 31, "n_threads": 16}) == 4
    assert readers_for({"n_gpu_layers": 31, "n_threads": 2}) == 1
