"""A character-level LSTM language model on Python's own documentation text.

    python examples/char_lstm.py [--mode jit|interpret|eager|compile|imperative] [--compare] [--steps N]

Embedding -> LSTM (a `tg.scan` over time) -> Linear, trained with Adam to predict the next
character of windows of the pydoc topics corpus (`tg.data.load_pydoc_corpus`). Prints the
validation loss in bits per character — to compare with the corpus' unigram entropy
(about 4.69 bits: the best score without context) — and a generated text sample.
"""

from __future__ import annotations

import tracegraph as tg

from _common import add_text_flags, on_device, parser, run_text_model


class CharLSTM(tg.nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, *, key):
        k1, k2, k3 = tg.random.split(key, 3)
        self.embed = tg.nn.Embedding(vocab_size, embed_dim, key=k1)
        self.lstm = tg.nn.LSTM(embed_dim, hidden_size, batch_first=True, key=k2)
        self.head = tg.nn.Linear(hidden_size, vocab_size, key=k3)

    def forward(self, ids):                    # ids: i32[B, T] -> logits f32[B, T, V]
        hs, _ = self.lstm(self.embed(ids))
        return self.head(hs)



def main(argv=None):
    p = parser(__doc__.splitlines()[0], steps=1500, batch_size=32, lr=3e-3)
    p.add_argument("--embed-dim", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    args = add_text_flags(p).parse_args(argv)
    with on_device(args.device, mesh=args.mesh):
        corpus = tg.data.load_pydoc_corpus(max_chars=args.max_chars)
        print(corpus)
        model = CharLSTM(corpus.vocab_size, args.embed_dim, args.hidden,
                         key=tg.random.key(args.seed))
        steps = args.steps
        schedule = tg.optim.cosine_decay_schedule(args.lr, steps, alpha=0.1) if steps else args.lr
        optimizer = tg.optim.chain(tg.optim.clip_by_global_norm(1.0), tg.optim.adam(schedule))
        return run_text_model(args, corpus, model, optimizer)


if __name__ == "__main__":
    main()
