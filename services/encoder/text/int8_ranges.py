"""Calibration texts for int8/uint8 outputs: the per-dimension ranges are measured on these, once per model."""

from __future__ import annotations

from pathlib import Path

# Varied on purpose (catalog entries, queries, reviews, news, how-tos, short and long, a few
# languages): int8 levels span the ranges these reach, so narrow calibration text would clip.
BUILT_IN: tuple[str, ...] = (
    "Espresso machine with milk frother",
    "Conical burr grinder with 40 grind settings for espresso and pour-over coffee.",
    "Waterproof hiking boots with a grippy sole for muddy trails",
    "Lightweight running shoes, breathable mesh upper, size 42",
    "A crew of a commercial space tug meets a deadly alien creature.",
    "Toy Story (1995). Adventure, Animation, Children, Comedy, Fantasy.",
    "A detective hunts a serial killer through a rainy city.",
    "Romantic comedy about two rival bakers in Paris",
    "Documentary on the migration of humpback whales",
    "Jazz piano trio, live in Tokyo",
    "Quarterly tax filing for small businesses",
    "How to prune roses in early spring",
    "What is the capital of Australia?",
    "cheap flights to lisbon in may",
    "best budget laptop for students 2024",
    "Slow-cooked tomato soup with basil and garlic bread",
    "Vegan chocolate cake recipe without eggs or butter",
    "The central bank raised interest rates by a quarter point on Wednesday.",
    "Heavy rain is expected across the north of the country this weekend.",
    "The home team won the final 3-1 after extra time.",
    "Researchers found a new species of frog in the rainforest.",
    "Stock markets fell sharply after the earnings report.",
    "Python function that parses a CSV file and returns a list of dicts",
    "SELECT name, price FROM products WHERE category = 'kitchen' ORDER BY price;",
    "Error: connection refused while connecting to the database on port 5432",
    "Kubernetes pod stuck in CrashLoopBackOff after the image update",
    "Great product, arrived quickly and works exactly as described.",
    "Terrible customer service, I waited three weeks for a refund.",
    "The battery lasts two days but the screen scratches easily.",
    "Five stars. Would buy again!",
    "Ergonomic office chair with lumbar support and adjustable armrests",
    "Noise-cancelling wireless headphones with 30 hours of battery",
    "4K television, 55 inch, HDR, smart TV apps built in",
    "Stainless steel water bottle keeps drinks cold for 24 hours",
    "Children's picture book about a bear who cannot sleep",
    "Hardcover edition of a classic Russian novel, new translation",
    "Acoustic guitar for beginners with gig bag and tuner",
    "Yoga mat, non-slip, 6 mm thick, purple",
    "Cordless drill with two batteries and a set of bits",
    "Organic green tea, 100 bags",
    "Dog food for senior dogs with sensitive stomachs",
    "Cat scratching post with a hammock on top",
    "Winter jacket, down filled, hooded, water resistant",
    "Silk scarf with a floral print",
    "Men's leather wallet with RFID protection",
    "Board game for the whole family, 2 to 6 players",
    "Puzzle of 1000 pieces showing a mountain lake",
    "Electric toothbrush with pressure sensor",
    "Sunscreen SPF 50 for sensitive skin",
    "Vintage film camera, 35 mm, fully working",
    "Hotel near the beach with free breakfast and parking",
    "Guided walking tour of the old town, two hours",
    "Train tickets from Berlin to Munich",
    "Apartment for rent, two bedrooms, balcony, close to the metro",
    "Used car, 2015, diesel, 120000 km, one owner",
    "Online course: introduction to machine learning",
    "Master's degree in public health, part time",
    "Job opening: senior backend engineer, remote",
    "Volunteer at the local animal shelter on weekends",
    "Symptoms of the common cold and how to treat them",
    "How many hours of sleep does a teenager need?",
    "The mitochondria is the powerhouse of the cell.",
    "Photosynthesis converts light energy into chemical energy.",
    "The French Revolution began in 1789.",
    "Shakespeare wrote Hamlet around 1600.",
    "Water boils at 100 degrees Celsius at sea level.",
    "A haiku about autumn leaves falling on a quiet pond",
    "Once upon a time, in a kingdom by the sea, there lived a lonely princess.",
    "Breaking: earthquake of magnitude 6.1 strikes off the coast",
    "Merry Christmas and a happy new year to all our customers!",
    "Your order #48213 has shipped and will arrive on Thursday.",
    "Reset your password by clicking the link below.",
    "Meeting moved to 3 pm, room 4B",
    "lol that was hilarious 😂",
    "ok",
    "thanks!",
    "Horror, Thriller. Tags: atmospheric, twist ending, creepy.",
    "Sci-Fi, Action. Tags: time travel, dystopia, robots, cult film.",
    "Drama, War. Tags: based on a true story, World War II.",
    "Animation, Musical. Tags: Disney, songs, fairy tale.",
    "Crime, Film-Noir. Tags: heist, 1950s, black and white.",
    "Un café con leche y una tostada, por favor.",
    "Das Wetter ist heute sonnig und warm.",
    "Je voudrais réserver une table pour deux personnes ce soir.",
    "Il treno per Roma parte alle otto.",
    "Este livro conta a história de uma família no Brasil.",
    "東京の天気は晴れです。",
    "Как пройти к вокзалу?",
    "The quick brown fox jumps over the lazy dog.",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
    (
        "This long review covers everything: the packaging was sturdy, setup took ten minutes, the app"
        " asked for too many permissions, the sound is warm with deep bass, the microphone is mediocre"
        " in windy streets, and after a month of daily use the battery still holds most of its charge."
    ),
    (
        "Terms of service: by using this website you agree to the collection of anonymous usage data,"
        " the storage of cookies for the duration of your session, and the processing of payments by"
        " our third-party provider in accordance with applicable law."
    ),
    (
        "In the third season, the family returns to the farm to find that the old barn has burned down,"
        " the neighbours have sold their land to a developer, and the youngest daughter has decided to"
        " run for mayor against her own grandfather."
    ),
)


def calibration_texts(path: str = "") -> list[str]:
    """The texts of `path` (one per non-blank line), or the built-in ones when empty."""
    if not path:
        return list(BUILT_IN)
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    texts = [line for line in lines if line]
    if len(texts) < 2:
        raise ValueError(f"calibration file {path} needs at least two non-blank lines")
    return texts
