"""The built-in base instructions and their train/held-out split.

Each base instruction is a short everyday request that a 135M-parameter instruct model can answer in 2-4
sentences, written for this project. Each comes with two words used by the word constraints:

- `keyword`: a lowercase word that fits a good answer but does not appear in the instruction, so including it takes
  a choice (used by `include_keyword` and `word_frequency`);
- `avoid`: a lowercase word taken from the instruction itself, which a natural answer would repeat, so avoiding it
  takes effort (used by `avoid_word`).

The split is fixed: the held-out set is the first quarter (rounded down) of the instructions after a shuffle with
`random.Random(HELDOUT_SEED)`, the training set is the rest, both kept in table order. Train and held-out prompts
therefore never share a base instruction, whatever constraints are appended. New instructions are appended to the
table, never inserted, so the ones already there keep their place (the split itself changes with the table's size).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class BaseInstruction:
    """One everyday request and the two words its word constraints use (see the module docstring)."""

    text: str
    keyword: str
    avoid: str


# One base instruction per line: text | keyword | avoid.
_TABLE = """\
Describe how a rainbow forms. | sunlight | rainbow
Explain why the sky is blue. | light | sky
Describe how bees make honey. | nectar | honey
Explain what photosynthesis is. | leaves | photosynthesis
Explain why leaves change color in autumn. | chlorophyll | leaves
Describe how clouds form. | vapor | clouds
Explain what causes thunder. | lightning | thunder
Explain why the moon changes shape. | phases | moon
Describe what happens when water freezes. | ice | water
Explain how a seed grows into a plant. | roots | seed
Explain why we have seasons. | tilt | seasons
Describe how a volcano erupts. | magma | volcano
Explain what an earthquake is. | plates | earthquake
Explain why the ocean is salty. | minerals | ocean
Describe the water cycle. | evaporation | water
Explain how magnets work. | poles | magnets
Explain what gravity does. | fall | gravity
Describe how a caterpillar becomes a butterfly. | cocoon | caterpillar
Explain why birds migrate. | winter | birds
Explain how fish breathe underwater. | gills | fish
Describe what a desert is like. | sand | desert
Explain why the stars twinkle. | atmosphere | stars
Explain what a tide is. | moon | tide
Describe how snow forms. | crystals | snow
Explain why ice floats on water. | density | ice
Explain what a food chain is. | predator | food
Explain how the heart pumps blood. | muscle | heart
Explain why we need to drink water. | body | water
Describe what the sun is made of. | hydrogen | sun
Explain what a habitat is. | animals | habitat
Explain how wind is created. | air | wind
Describe a thunderstorm. | rain | thunderstorm
Explain why plants need sunlight. | energy | plants
Explain what fossils are. | bones | fossils
Explain how a rain forest helps the planet. | oxygen | forest
Describe how a river reaches the sea. | flows | river
Explain what an eclipse is. | shadow | eclipse
Explain why cats purr. | happy | cats
Explain how dogs show they are happy. | tail | dogs
Describe what owls eat. | mice | owls
Give tips for better sleep at night. | bedtime | sleep
Give advice to someone starting to run. | shoes | run
Explain why breakfast is important. | energy | breakfast
Give tips for drinking more water. | bottle | water
Explain why stretching is good for you. | muscles | stretching
Suggest a simple way to relax after work. | breathe | work
Explain why washing your hands matters. | germs | hands
Give advice for staying healthy in winter. | vitamins | winter
Explain what a balanced diet is. | vegetables | diet
Give tips for reducing stress. | exercise | stress
Explain why walking is good exercise. | heart | walking
Give advice for someone who sits at a desk all day. | stretch | desk
Explain why sunscreen is important. | skin | sunscreen
Give tips for eating more vegetables. | salad | vegetables
Explain how to treat a small cut. | bandage | cut
Explain why brushing your teeth matters. | cavities | teeth
Give tips for staying focused while studying. | breaks | studying
Suggest ways to stay active on a rainy day. | indoors | rainy
Explain why naps can be helpful. | rest | naps
Give advice for drinking less coffee. | tea | coffee
Explain what a healthy snack is. | fruit | snack
Give tips for waking up early. | alarm | early
Explain what a budget is. | money | budget
Give tips for saving money. | spending | money
Explain what interest on a loan means. | borrow | loan
Explain why an emergency fund is useful. | savings | fund
Give advice for buying a used car. | mechanic | car
Explain what a credit score is. | payments | credit
Give tips for spending less on groceries. | list | groceries
Explain the difference between a need and a want. | example | need
Explain what inflation is. | prices | inflation
Give advice for a teenager getting their first paycheck. | save | paycheck
Explain why people compare prices before buying. | deal | prices
Explain what a receipt is for. | purchase | receipt
Give tips for splitting a bill with friends. | app | bill
Explain what a bank account does. | deposit | bank
Give tips for keeping a kitchen clean. | sponge | kitchen
Explain how to water a houseplant. | soil | houseplant
Give advice for organizing a closet. | hangers | closet
Suggest ways to save energy at home. | lights | energy
Explain how to make a bed neatly. | sheets | bed
Give tips for doing laundry. | detergent | laundry
Explain why you should change smoke alarm batteries. | fire | batteries
Give advice for moving to a new apartment. | boxes | apartment
Suggest ways to make a small room feel bigger. | mirrors | room
Explain how to unclog a sink. | plunger | sink
Give tips for keeping plants alive indoors. | sunlight | plants
Explain why recycling matters. | waste | recycling
Give tips for reducing food waste. | leftovers | food
Explain how to fold a shirt. | sleeves | shirt
Give advice for living with a roommate. | chores | roommate
Suggest a way to keep a home quiet at night. | rugs | home
Explain how to boil an egg. | minutes | egg
Describe a good breakfast. | eggs | breakfast
Explain how to make a cup of tea. | kettle | tea
Give tips for cooking rice. | pot | rice
Describe how to make a simple salad. | lettuce | salad
Explain why bread rises. | yeast | bread
Suggest a quick dinner for a busy night. | pasta | dinner
Explain how to keep fruit fresh longer. | fridge | fruit
Give tips for baking cookies. | oven | cookies
Explain how to make a sandwich. | bread | sandwich
Describe what makes a good soup. | broth | soup
Explain why you should wash vegetables. | dirt | vegetables
Give tips for cutting onions without crying. | knife | onions
Explain how to make scrambled eggs. | butter | eggs
Suggest a healthy lunch for work. | vegetables | lunch
Explain what a recipe is. | ingredients | recipe
Describe the taste of a lemon. | sour | lemon
Explain how to store leftovers safely. | containers | leftovers
Give advice for cooking for a large group. | plan | cooking
Explain why pizza is so popular. | cheese | pizza
Explain what a password manager does. | secure | password
Give tips for making a strong password. | symbols | password
Explain what the internet is. | computers | internet
Explain how email works. | inbox | email
Give advice for keeping a phone battery healthy. | charge | battery
Explain what a web browser is. | websites | browser
Explain what a computer virus is. | software | virus
Give tips for taking better photos with a phone. | lighting | photos
Explain why software updates are important. | security | updates
Explain what cloud storage is. | files | storage
Give advice for spending less time on screens. | hobbies | screens
Explain what a search engine does. | results | search
Explain how to spot a scam message. | link | scam
Explain what a robot is. | machine | robot
Explain what Wi-Fi is. | router | wi-fi
Give tips for backing up your files. | drive | files
Explain what a keyboard shortcut is. | keys | shortcut
Explain how a microwave heats food. | molecules | food
Explain what a calculator does. | numbers | calculator
Explain why a computer can get slow. | memory | computer
Give advice for making new friends. | clubs | friends
Explain how to apologize sincerely. | sorry | apologize
Give tips for being a good listener. | attention | listener
Suggest ways to welcome a new neighbor. | cookies | neighbor
Explain why saying thank you matters. | gratitude | thank
Give advice for handling a disagreement with a friend. | calm | disagreement
Explain how to write a thank-you note. | card | note
Give tips for a first day at a new school. | teacher | school
Suggest a fun activity for a family evening. | game | family
Give advice for talking to someone shy. | questions | shy
Explain how to be polite at a dinner party. | host | dinner
Give tips for remembering people's names. | repeat | names
Explain why kindness matters. | others | kindness
Suggest a gift for a friend who loves books. | novel | books
Give advice for planning a birthday party. | cake | party
Explain how to give a compliment. | sincere | compliment
Give tips for staying in touch with old friends. | call | friends
Explain how to introduce yourself at a meeting. | name | meeting
Give advice for being a good team member. | help | team
Explain why sharing is important for children. | toys | sharing
Give tips for learning a new language. | practice | language
Explain how to take good notes in class. | headings | notes
Give advice for reading more books. | library | books
Explain why practice helps you improve. | skills | practice
Give tips for memorizing a poem. | lines | poem
Explain what a library card lets you do. | borrow | library
Give advice for preparing for an exam. | review | exam
Explain how to learn to ride a bike. | balance | bike
Give tips for learning to play the guitar. | chords | guitar
Explain why asking questions helps you learn. | curious | questions
Suggest a good hobby for a rainy weekend. | painting | hobby
Explain how to start writing a journal. | pen | journal
Give advice for a student who feels behind. | teacher | student
Explain what a dictionary is for. | meaning | dictionary
Give tips for writing a short essay. | outline | essay
Explain why reading to children is valuable. | vocabulary | reading
Give advice for learning to swim. | float | swim
Explain how to solve a jigsaw puzzle. | edges | puzzle
Give tips for learning to draw. | sketch | draw
Explain why sleep helps memory. | brain | memory
Give tips for packing a suitcase. | clothes | suitcase
Explain how to read a map. | legend | map
Give advice for a first flight on a plane. | airport | plane
Suggest things to do on a long train ride. | book | train
Give tips for traveling on a budget. | hostel | budget
Explain why people enjoy camping. | tent | camping
Give advice for hiking safely. | water | hiking
Explain what a passport is used for. | travel | passport
Suggest how to spend a day at the beach. | swimming | beach
Give tips for driving in the rain. | slow | driving
Explain how to stay safe when crossing the street. | traffic | street
Give advice for visiting a new city. | walk | city
Explain why people take vacations. | relax | vacations
Give tips for staying comfortable on a long car trip. | snacks | car
Describe what a good picnic needs. | blanket | picnic
Give advice for a first job interview. | prepare | interview
Explain how to write a simple to-do list. | tasks | list
Give tips for managing your time. | schedule | time
Explain why deadlines are useful. | finish | deadlines
Give advice for asking for a raise. | achievements | raise
Explain what a resume is. | experience | resume
Give tips for running a short meeting. | agenda | meeting
Explain how to write a polite email to a boss. | greeting | email
Give advice for working from home. | desk | home
Explain why breaks during work help. | tired | work
Give tips for staying organized at work. | folders | organized
Explain what teamwork means. | together | teamwork
Give advice for starting a small business. | customers | business
Explain how to handle a busy week. | priorities | week
Give tips for giving a short speech. | audience | speech
Give advice for taking care of a new puppy. | walks | puppy
Explain how to care for a goldfish. | tank | goldfish
Explain why dogs like to sniff things. | smell | dogs
Describe what a cat needs to be happy. | toys | cat
Give tips for keeping a pet rabbit. | hay | rabbit
Explain why elephants have trunks. | drink | elephants
Describe how ants work together. | colony | ants
Explain what a nocturnal animal is. | night | animal
Explain why some animals hibernate. | winter | animals
Describe how a spider builds a web. | silk | spider
Explain why frogs live near water. | skin | frogs
Describe what penguins are like. | ice | penguins
Explain why horses sleep standing up. | legs | horses
Describe how a bird builds a nest. | twigs | nest
Explain why bees are important. | pollen | bees
Explain why trees are important. | oxygen | trees
Give tips for using less plastic. | reusable | plastic
Explain what compost is. | scraps | compost
Suggest ways to save water at home. | shower | water
Explain why we should protect oceans. | fish | oceans
Explain what solar power is. | panels | solar
Give tips for starting a small garden. | seeds | garden
Explain why litter is harmful. | animals | litter
Explain what air pollution is. | smoke | pollution
Give advice for walking or biking instead of driving. | healthy | driving
Give tips for starting to paint. | brushes | paint
Explain how to care for a bicycle. | chain | bicycle
Describe what makes a good movie. | story | movie
Explain why people enjoy music. | rhythm | music
Give tips for learning to knit. | yarn | knit
Suggest a game to play with friends. | cards | game
Explain the rules of tag in simple words. | chase | tag
Explain how to fly a kite. | string | kite
Describe a perfect autumn day. | leaves | autumn
Describe a peaceful morning. | coffee | morning
Describe the sound of rain. | roof | rain
Describe what a farm looks like. | barn | farm
Describe a busy city street. | cars | street
Describe a quiet library. | shelves | library
Describe a snowy winter evening. | fireplace | winter
Describe the smell of fresh bread. | warm | bread
Explain why people keep diaries. | thoughts | diaries
Give tips for starting a collection. | shelf | collection
Explain what a museum is for. | history | museum
Explain why holidays are special. | traditions | holidays
Explain what a hobby is. | fun | hobby
Give advice for writing a short story. | character | story
Explain why laughing is good for you. | stress | laughing
Describe a good friend. | trust | friend
Describe how to play hide and seek. | count | hide
Explain why exercise makes you feel good. | mood | exercise
Explain what a calendar is for. | dates | calendar
Explain why clocks are useful. | hours | clocks
Explain what a neighborhood is. | houses | neighborhood
Give tips for keeping a car clean. | vacuum | car
Explain what a volunteer does. | community | volunteer
Give advice for someone learning to cook. | recipes | cook
Describe what a good teacher does. | patient | teacher
Explain how traffic lights work. | red | traffic
Explain why we have rules. | fair | rules
Explain what a map app does. | directions | map
Describe a walk in the park. | trees | park
Give tips for a picnic on a hot day. | shade | hot
Explain how a library organizes books. | shelves | library
Explain what a farmer does. | crops | farmer
Explain what a firefighter does. | hose | firefighter
Explain what a doctor does. | patients | doctor
Explain what a mail carrier does. | letters | mail
Explain what a chef does. | kitchen | chef
Explain what a pilot does. | cockpit | pilot
Explain what a librarian does. | books | librarian
Explain what a dentist does. | teeth | dentist
Explain what an architect does. | buildings | architect
Explain what a nurse does. | hospital | nurse
"""

BASE_INSTRUCTIONS: tuple[BaseInstruction, ...] = tuple(
    BaseInstruction(*(part.strip() for part in line.split("|"))) for line in _TABLE.splitlines()
)

HELDOUT_SEED = 2312
"""Seed of the shuffle that picks the held-out quarter; changing it changes the split."""


def _split() -> tuple[tuple[BaseInstruction, ...], tuple[BaseInstruction, ...]]:
    order = list(range(len(BASE_INSTRUCTIONS)))
    random.Random(HELDOUT_SEED).shuffle(order)
    heldout = set(order[: len(order) // 4])
    train = tuple(b for i, b in enumerate(BASE_INSTRUCTIONS) if i not in heldout)
    return train, tuple(b for i, b in enumerate(BASE_INSTRUCTIONS) if i in heldout)


TRAIN_INSTRUCTIONS, HELDOUT_INSTRUCTIONS = _split()


def base_instructions(split: str) -> tuple[BaseInstruction, ...]:
    """The base instructions of `split` ("train" or "heldout")."""
    if split == "train":
        return TRAIN_INSTRUCTIONS
    if split == "heldout":
        return HELDOUT_INSTRUCTIONS
    raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
