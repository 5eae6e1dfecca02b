"""A small causal Transformer language model on Python's own documentation text.

    python examples/transformer.py [--mode jit|interpret|eager|compile|imperative] [--compare] [--steps N]
    python examples/transformer.py --mesh data=4,model=2   # data + tensor parallel, 8 devices

Token and position embeddings -> N pre-norm blocks (LayerNorm -> causal
MultiHeadAttention -> residual, LayerNorm -> MLP -> residual) -> LayerNorm -> Linear,
trained with Adam to predict the next character of the pydoc topics corpus. Prints the
validation bits per character (the corpus' unigram entropy is about 4.69) and a sample.
"""

from __future__ import annotations

import tracegraph as tg

from _common import add_text_flags, on_device, parser, run_text_model


class Block(tg.nn.Module):
    def __init__(self, dim: int, heads: int, *, key):
        k1, k2, k3 = tg.random.split(key, 3)
        self.norm1 = tg.nn.LayerNorm(dim)
        self.attn = tg.nn.MultiHeadAttention(dim, heads, causal=True, key=k1)
        self.norm2 = tg.nn.LayerNorm(dim)
        self.mlp = tg.nn.Sequential([tg.nn.Linear(dim, 4 * dim, key=k2), tg.nn.GELU(),
                                     tg.nn.Linear(4 * dim, dim, key=k3)])

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class CharTransformer(tg.nn.Module):
    def __init__(self, vocab_size: int, dim: int, heads: int, layers: int, max_len: int,
                 *, key):
        keys = tg.random.split(key, layers + 3)
        self.embed = tg.nn.Embedding(vocab_size, dim, key=keys[0])
        self.pos = tg.nn.Embedding(max_len, dim, key=keys[1])
        self.blocks = [Block(dim, heads, key=k) for k in keys[3:]]
        self.norm = tg.nn.LayerNorm(dim)
        self.head = tg.nn.Linear(dim, vocab_size, key=keys[2])

    def forward(self, ids):                    # ids: i32[B, T] -> logits f32[B, T, V]
        x = self.embed(ids) + self.pos(tg.arange(ids.shape[-1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))



def main(argv=None):
    p = parser(__doc__.splitlines()[0], steps=1500, batch_size=32, lr=3e-3)
    p.add_argument("--dim", type=int, default=64, help="model width")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    args = add_text_flags(p).parse_args(argv)
    with on_device(args.device, mesh=args.mesh):
        corpus = tg.data.load_pydoc_corpus(max_chars=args.max_chars)
        print(corpus)
        model = CharTransformer(corpus.vocab_size, args.dim, args.heads, args.layers,
                                args.seq_len, key=tg.random.key(args.seed))
        steps = args.steps
        schedule = (tg.optim.warmup_cosine_decay_schedule(0.0, args.lr, min(100, steps // 10),
                                                          steps, end_value=args.lr / 10)
                    if steps else args.lr)
        optimizer = tg.optim.chain(tg.optim.clip_by_global_norm(1.0), tg.optim.adam(schedule))
        return run_text_model(args, corpus, model, optimizer, summary=True)


if __name__ == "__main__":
    main()
