"""Item texts of the synthetic catalog: per-topic English vocabularies, so a text model can tell topics apart."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Topic:
    name: str
    category: str
    words: tuple[str, ...]


# Real words, so all-MiniLM-L6-v2 places items of one topic near each other. Two pairs of topics share a
# category (coffee and cooking, reading and music): the category alone does not give the topic away.
TOPICS: tuple[Topic, ...] = (
    Topic("coffee", "kitchen", ("espresso", "roast", "beans", "grinder", "latte", "cappuccino", "brew", "barista",
                                "mocha", "arabica", "crema", "filter", "kettle", "mug", "pour-over")),
    Topic("hiking", "outdoors", ("trail", "backpack", "tent", "boots", "compass", "summit", "camping", "lantern",
                                 "canteen", "trekking", "poles", "sleeping bag", "mountain", "map", "firestarter")),
    Topic("cooking", "kitchen", ("skillet", "chef knife", "cutting board", "saucepan", "spatula", "oven", "recipe",
                                 "wok", "whisk", "apron", "baking", "casserole", "ladle", "grill", "cookbook")),
    Topic("gardening", "garden", ("seeds", "soil", "trowel", "compost", "planter", "hose", "pruning shears",
                                  "fertilizer", "tulip", "seedling", "greenhouse", "mulch", "watering can", "rake",
                                  "herbs")),
    Topic("fitness", "sports", ("dumbbell", "yoga mat", "kettlebell", "treadmill", "protein", "resistance band",
                                "workout", "gym", "running shoes", "stretching", "barbell", "jump rope", "cardio",
                                "pull-up bar", "sweatband")),
    Topic("music", "media", ("guitar", "piano", "drum", "violin", "amplifier", "microphone", "headphones", "vinyl",
                             "synthesizer", "ukulele", "metronome", "strings", "speaker", "tuner", "sheet music")),
    Topic("pets", "pets", ("dog", "cat", "leash", "kibble", "collar", "aquarium", "litter", "chew toy", "pet bed",
                           "scratching post", "treats", "puppy", "kitten", "grooming brush", "bird cage")),
    Topic("photography", "electronics", ("camera", "lens", "tripod", "shutter", "flash", "aperture", "zoom",
                                         "photo", "memory card", "camera bag", "mirrorless", "viewfinder",
                                         "studio lighting", "portrait", "film")),
    Topic("reading", "media", ("novel", "paperback", "hardcover", "bookmark", "poetry", "mystery", "biography",
                               "library", "fiction", "memoir", "anthology", "reading lamp", "bookshelf", "thriller",
                               "author")),
    Topic("baby", "baby", ("diaper", "stroller", "crib", "pacifier", "onesie", "rattle", "baby bottle", "bib",
                           "car seat", "teether", "swaddle", "nursery", "high chair", "baby monitor", "lullaby")),
    Topic("gaming", "electronics", ("console", "controller", "joystick", "arcade", "gamepad", "esports",
                                    "multiplayer", "quest", "dungeon", "pixel art", "trophy", "strategy",
                                    "puzzle game", "role-playing", "gaming chair")),
    Topic("skincare", "beauty", ("moisturizer", "serum", "cleanser", "sunscreen", "lotion", "toner", "face mask",
                                 "lip balm", "exfoliator", "night cream", "retinol", "fragrance", "shampoo",
                                 "conditioner", "soap")),
)  # fmt: skip

# Shared by every topic: they make texts look alike without saying anything about taste.
FILLER = ("classic", "premium", "compact", "everyday", "deluxe", "essential", "original", "modern", "simple",
          "durable", "lightweight", "handy", "popular", "quality", "value")  # fmt: skip
CONSUMABLE_WORDS = ("refill", "pack", "supply", "bundle")

_SENTENCES = (
    "A {f} {a} for {b} and {c}.",
    "{F} {a} with {b}, made for {c}.",
    "Everything you need for {a}: {b} and {c}, {f} and easy to use.",
    "{F} choice of {a} lovers, pairs well with {b} and {c}.",
)


@dataclass(frozen=True)
class ItemText:
    title: str
    text: str
    tags: list[str]
    category: str


def item_text(rng: np.random.Generator, topic: Topic, consumable: bool, noise_topic: Topic | None) -> ItemText:
    """Title, text and tags drawn from the topic's words (one word from `noise_topic`, when given)."""
    words = [str(w) for w in rng.choice(topic.words, size=4, replace=False)]
    if noise_topic is not None:
        words[3] = str(rng.choice(noise_topic.words))
    filler = str(rng.choice(FILLER))
    title = f"{filler.capitalize()} {words[0]} {words[1]}"
    if consumable:
        title += f" {rng.choice(CONSUMABLE_WORDS)}"
    sentence = str(rng.choice(_SENTENCES))
    text = sentence.format(f=filler, F=filler.capitalize(), a=words[0], b=words[2], c=words[3])
    tags = [words[0], words[1]] + (["refill"] if consumable else [])
    return ItemText(title=title, text=text, tags=tags, category=topic.category)
