"""photod's tokenizer: its own rules on a tiny vocabulary, then token-for-token equality with cn_clip."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from photod.errors import ModelError
from photod.model.tokenizer import Tokenizer, basic_words

# --- the rules, on a vocabulary small enough to reason about ------------------------------------------

TINY_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "海",
    "边",
    "日",
    "落",
    "un",
    "##aff",
    "##able",
    "cafe",
    ",",
    "!",
    "a",
    "##b",
    "x",
]


@pytest.fixture
def tiny(tmp_path) -> Tokenizer:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return Tokenizer.from_vocab(path)


def ids(*tokens: str) -> list[int]:
    return [TINY_VOCAB.index(t) for t in tokens]


def test_chinese_characters_are_single_words():
    assert basic_words("海边的日落") == ["海", "边", "的", "日", "落"]


def test_lowercases_strips_accents_and_splits_punctuation():
    assert basic_words("Café,  NAÏVE!\t$5") == ["cafe", ",", "naive", "!", "$", "5"]


def test_control_characters_vanish_and_odd_whitespace_separates():
    assert basic_words("a\x00b\u200bc\ufeffd\x7f") == ["abcd"]
    assert basic_words("a\u3000b\u00a0c\nd") == ["a", "b", "c", "d"]


def test_greedy_longest_match_with_continuations(tiny):
    assert tiny.split("unaffable") == ["un", "##aff", "##able"]
    assert tiny.encode("unaffable, 海边") == ids("un", "##aff", "##able", ",", "海", "边")


def test_a_word_with_an_unmatched_part_is_one_unk(tiny):
    # "unaffablez": the trailing "z" has no piece, so the whole word, not just "z", is unknown.
    assert tiny.split("unaffablez a") == ["[UNK]", "a"]


def test_words_over_200_characters_are_unk(tiny):
    assert tiny.split("a" + "b" * 199) == ["a"] + ["##b"] * 199
    assert tiny.split("a" + "b" * 200) == ["[UNK]"]


def test_tokenize_frames_truncates_and_pads(tiny):
    out = tiny.tokenize(["海边", "x " * 10, ""], context_length=6)
    assert out.dtype == np.int64 and out.shape == (3, 6)
    cls, sep, x = ids("[CLS]", "[SEP]", "x")
    assert out[0].tolist() == [cls, *ids("海", "边"), sep, 0, 0]
    assert out[1].tolist() == [cls, x, x, x, x, sep]
    assert out[2].tolist() == [cls, sep, 0, 0, 0, 0]
    assert tiny.tokenize("海").shape == (1, 52)


def test_vocab_load_is_cached_and_reloads_a_replaced_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    first = Tokenizer.from_vocab(path)
    assert Tokenizer.from_vocab(path).vocab is first.vocab
    path.write_text("\n".join(TINY_VOCAB + ["new"]) + "\n", encoding="utf-8")
    assert Tokenizer.from_vocab(path).encode("new") == [len(TINY_VOCAB)]


def test_missing_vocab_names_the_file(tmp_path):
    with pytest.raises(ModelError, match="nowhere.txt"):
        Tokenizer.from_vocab(tmp_path / "nowhere.txt")


def test_vocab_without_special_tokens_is_refused(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("a\nb\n[UNK]\n", encoding="utf-8")
    with pytest.raises(ModelError, match=r"\[CLS\], \[SEP\]"):
        Tokenizer.from_vocab(path)


def test_bad_context_length_is_refused(tiny):
    with pytest.raises(ModelError, match="context length 1"):
        tiny.tokenize("海", context_length=1)


def test_non_text_is_refused(tiny):
    with pytest.raises(TypeError, match="bytes"):
        tiny.tokenize([b"abc"])


def test_module_needs_neither_torch_nor_cn_clip():
    # The daemon runs where torch cannot be installed; importing this module must not pull it in.
    code = (
        "import sys, photod.model.tokenizer; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'cn_clip')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- equality with cn_clip on real vocabulary ---------------------------------------------------------

HAND_CASES = [
    "",
    " ",
    "   ",
    "\t\n\r",
    "\u3000\u3000",
    "\u00a0",
    "\u2028\u2029",
    "\x0b\x0c\x1c\x1d\x1e\x1f\x85",
    "\x00",
    "\x00海\x00",
    "\ufffd",
    "a\ufffdb",
    "\u200b\u200c\u200d\ufeff\u00ad",
    "\x01\x02\x7f\x9f",
    "海边的日落",
    "穿红衣服的小女孩在草地上",
    "我家的猫在沙发上",
    "一只狗在雪地里奔跑。",
    "Hello, World!",
    "HELLO world",
    "unaffable",
    "The QUICK brown fox jumps over the lazy dog.",
    "café naïve résumé Ångström façade coöperate",
    "Straße ß ẞ",
    "İstanbul ı I",
    "ΣΟΦΟΣ σοφος",
    "ﬁﬂ ﬃ",
    "e\u0301",
    "\u0301abc",
    "a\u0308\u0304",
    "Ǆ ǅ ǆ",
    "Ⅻ ⅻ ①②③ ㈠",
    "½ ¼ ² ³",
    "，。！？：；「」『』（）【】、～…—·",
    "ＡＢＣ ａｂｃ １２３ ＠＃＄％",
    "ｶﾀｶﾅ ﾊﾞﾋﾟ",
    "\uff01\uff1f\uff0c",
    "12345 3.14159 1,000,000 -42 +7 1e-9 0x1F 2023-08-15 12:30:45",
    "２０２３年８月１５日",
    "😀😃😄 👍🏽 👨‍👩‍👧‍👦 ❤️ 🇨🇳 🏳️‍🌈 ☺︎",
    "猫🐱狗🐶",
    "emoji😀inside",
    "#️⃣ *️⃣ 1️⃣",
    "𠀀𠀁𠀂 𪚥 𡃁 𤭢 𩸽",
    "\U0002a700\U0002b740\U0002b820\U0002cea1",
    "\U0002ceb0\U0002ebe0 \U00030000\U00031350",
    "豈更車 \uf900\ufa6d \U0002f800\U0002fa1d",
    "⼀⼆⼈ ⺀⺁",
    "㐀㐁 䶵",
    "〇〡〢",
    "ひらがな カタカナ 日本語の文章です。",
    "がぎぐ パピプ",
    "한국어 문장입니다. 안녕하세요!",
    "ㄱㄴㄷ ᄀᄁ",
    "ภาษาไทย",
    "العربية مرحبا",
    "हिन्दी नमस्ते",
    "Ελληνικά",
    "русский ТЕКСТ Ёё",
    "עברית",
    "https://example.com/path?q=海边&lang=zh#top",
    "mailto:user@example.com",
    "www.baidu.com/s?wd=日落",
    "C:\\Users\\photos\\IMG_0001.JPG",
    "/mnt/nas/照片/2023/海边.jpg",
    "[CLS] [SEP] [UNK] [PAD] [MASK]",
    "##abc ## #",
    "don't can't it's",
    "a-b_c.d/e",
    "$100 ^_^ `code` ~tilde~ |pipe|",
    "<html>&amp;</html>",
    "\ud800",
    "a\udfffb",
    "\ue000\uf8ff",
    "\U000f0000",
    "\u0378\u0379",
    "\U0010ffff",
    "a" * 199,
    "a" * 200,
    "a" * 201,
    "海" * 300,
    "word " * 100,
    "海边的日落，" * 30,
    "supercalifragilisticexpialidocious",
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "iPhone14ProMax",
    "COVID-19疫情",
    "5G网络",
    "NBA球星",
    "Python3.11",
    "AI人工智能",
    "100%纯棉",
]

POOLS = {
    "zh_words": [
        "海边",
        "日落",
        "小女孩",
        "草地",
        "猫",
        "沙发",
        "城市",
        "夜景",
        "红色",
        "雪山",
        "朋友",
        "生日",
        "蛋糕",
        "北京",
        "上海",
        "长城",
        "故宫",
        "西湖",
        "熊猫",
        "樱花",
        "火锅",
        "婚礼",
        "毕业",
        "旅行",
    ],
    "zh_chars": [chr(c) for c in range(0x4E00, 0x9FA6, 97)],
    "en_words": [
        "sunset",
        "Beach",
        "CAT",
        "dog",
        "sofa",
        "the",
        "a",
        "running",
        "unbelievable",
        "photos",
        "NYC",
        "iPhone",
        "wedding",
        "birthday",
        "mountain",
        "snow",
        "o'clock",
        "self-portrait",
    ],
    "digits": ["0", "7", "42", "2023", "3.14", "1,024", "０１２", "１９９９", "10086", "-5", "½"],
    "punct": list(",.!?;:'\"()[]{}<>/\\|@#$%^&*-_=+`~") + list("，。！？；：“”‘’（）《》【】、…—～·「」"),
    "emoji": ["😀", "🐱", "🌅", "❤️", "👍🏻", "👨‍👩‍👧", "🇯🇵", "🎂", "🏔️", "✨", "🔥", "🙏"],
    "accents": ["café", "naïve", "Ålesund", "Zürich", "São Paulo", "Kraków", "Ñandú", "Øresund", "crème"],
    "controls": ["\x00", "\x01", "\x1b", "\x7f", "\u200b", "\u200d", "\ufeff", "\u00ad", "\ufffd", "\x85"],
    "spaces": [" ", "  ", "\t", "\n", "\r\n", "\u3000", "\u00a0", "\u2009", "\u2028", "\x0b"],
    "rare_cjk": [
        chr(c)
        for c in (
            0x20000,
            0x20BB7,
            0x2A6A5,
            0x2A700,
            0x2B740,
            0x2B820,
            0x2CEB0,
            0x30000,
            0x3400,
            0x4DB5,
            0xF900,
            0xFA6D,
            0x2F800,
            0x2E80,
            0x3007,
            0x9FFF,
        )
    ],
    "ja_ko": ["こんにちは", "カメラ", "写真", "ﾃｽﾄ", "사진", "바다", "일몰", "ありがとう", "ソウル"],
    "urls": [
        "http://a.b/c",
        "https://photos.example.org/2023/08/IMG_1234.jpg?size=large",
        "ftp://nas.local/share",
        "user.name+tag@mail.example.com",
    ],
}


def _random_code_point(rng: random.Random) -> str:
    # Anywhere in Unicode, weighted towards the planes real text uses.
    plane = rng.choice([0, 0, 0, 0, 1, 2, 3, 14, 15])
    return chr(plane * 0x10000 + rng.randrange(0x10000))


def generated_cases(count: int = 520, seed: int = 20240611) -> list[str]:
    """Seeded random compositions of the pools above, so every run tests the same strings."""
    rng = random.Random(seed)
    names = sorted(POOLS)
    cases = []
    for i in range(count):
        parts = []
        for _ in range(rng.randint(1, 12 if i % 10 else 80)):  # every tenth one overflows the context
            if rng.random() < 0.05:
                parts.append(_random_code_point(rng))
            else:
                parts.append(rng.choice(POOLS[rng.choice(names)]))
        glue = rng.choice(["", " ", "", rng.choice(POOLS["spaces"])])
        text = glue.join(parts)
        if rng.random() < 0.3:
            text = text.upper() if rng.random() < 0.5 else text.title()
        cases.append(text)
    return cases


ALL_CASES = HAND_CASES + generated_cases()


@pytest.fixture(scope="module")
def cn_clip_tokenize():
    clip = pytest.importorskip("cn_clip.clip")
    return clip.tokenize


@pytest.fixture(scope="module")
def real_tokenizer(cn_clip_tokenize) -> Tokenizer:
    import cn_clip.clip

    return Tokenizer.from_vocab(Path(cn_clip.clip.__file__).parent / "vocab.txt")


def test_case_list_is_large_and_varied():
    assert len(ALL_CASES) >= 600
    assert len(set(ALL_CASES)) >= 580
    assert sum(len(c) > 200 for c in ALL_CASES) >= 20  # strings far beyond any context length


@pytest.mark.parametrize("context_length", [52, 24, 77])
def test_equal_to_cn_clip_token_for_token(cn_clip_tokenize, real_tokenizer, context_length):
    expected = cn_clip_tokenize(ALL_CASES, context_length=context_length).numpy()
    actual = real_tokenizer.tokenize(ALL_CASES, context_length=context_length)
    assert actual.dtype == np.int64 and actual.shape == expected.shape == (len(ALL_CASES), context_length)
    bad = [ALL_CASES[i] for i in np.flatnonzero((actual != expected).any(axis=1))]
    assert not bad, f"{len(bad)} strings tokenize differently, first ones: {bad[:5]!r}"


def test_cases_exercise_truncation_and_unknowns(real_tokenizer):
    # The equality above would be hollow if nothing were long or unknown: make sure both happen.
    out = real_tokenizer.tokenize(ALL_CASES, context_length=52)
    assert (out[:, -1] == real_tokenizer.sep_id).sum() >= 50
    assert (out == real_tokenizer.unk_id).any(axis=1).sum() >= 50


def test_single_string_equals_cn_clip(cn_clip_tokenize, real_tokenizer):
    text = "穿红衣服的小女孩在草地上"
    np.testing.assert_array_equal(real_tokenizer.tokenize(text), cn_clip_tokenize(text).numpy())
