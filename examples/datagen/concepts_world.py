"""Facts about math words, animals, countries, colors and nature (same shape as concepts_tech.TECH)."""

MATH = [
    ("number", "a number", "a value used to count and to measure, such as 3 or 42", [
        ("Do numbers ever end?", "There is no largest number, because you can always add one.")]),
    ("zero", "zero", "the number that means nothing at all", [
        ("What happens when you add zero to a number?", "Adding zero to a number does not change it."),
        ("What happens when you multiply a number by zero?", "Any number times zero is zero.")]),
    ("sum", "the sum", "the result of adding numbers together", [
        ("Which operation gives a sum?", "Addition gives a sum.")]),
    ("difference", "the difference", "the result of subtracting one number from another", [
        ("Which operation gives a difference?", "Subtraction gives a difference.")]),
    ("product", "the product", "the result of multiplying numbers together", [
        ("Which operation gives a product?", "Multiplication gives a product.")]),
    ("even number", "an even number", "a whole number that can be divided by two with no remainder", [
        ("Is zero even?", "Zero is an even number."),
        ("What digits do even numbers end with?", "Even numbers end with 0, 2, 4, 6 or 8.")]),
    ("odd number", "an odd number", "a whole number that leaves a remainder of one when divided by two", [
        ("What digits do odd numbers end with?", "Odd numbers end with 1, 3, 5, 7 or 9.")]),
    ("prime number", "a prime number", "a whole number greater than one that can only be divided by one and by itself", [
        ("What is the smallest prime number?", "The smallest prime number is 2."),
        ("Is 9 a prime number?", "9 is not a prime number, because 9 is 3 times 3.")]),
    ("triangle", "a triangle", "a shape with three sides and three corners", [
        ("What do the angles of a triangle add up to?", "The angles of a triangle add up to 180 degrees.")]),
    ("circle", "a circle", "a round shape where every point is the same distance from the center", [
        ("What is the distance around a circle called?", "The distance around a circle is called the circumference.")]),
    ("rectangle", "a rectangle", "a shape with four sides and four right angles", [
        ("How do you find the area of a rectangle?", "The area of a rectangle is its length times its width.")]),
    ("fraction", "a fraction", "a part of a whole, written as one number over another, such as one half", [
        ("What is the top number of a fraction called?", "The top number of a fraction is called the numerator.")]),
]

ANIMALS = [
    ("cat", "a cat", "a small furry animal that many people keep as a pet", [
        ("What sound does a cat make?", "A cat says meow."),
        ("What do cats like to chase?", "Cats like to chase mice.")]),
    ("dog", "a dog", "a loyal animal that people keep as a pet and a friend", [
        ("What sound does a dog make?", "A dog says woof."),
        ("Why do dogs sniff everything?", "Dogs have a very strong sense of smell.")]),
    ("horse", "a horse", "a large animal with four legs that people can ride", [
        ("What does a horse eat?", "A horse eats grass and hay."),
        ("What is a young horse called?", "A young horse is called a foal.")]),
    ("cow", "a cow", "a large farm animal that gives milk", [
        ("What sound does a cow make?", "A cow says moo."),
        ("How many stomachs does a cow have?", "A cow has a stomach with four parts.")]),
    ("bird", "a bird", "an animal with feathers and wings, and most birds can fly", [
        ("What do birds lay?", "Birds lay eggs."),
        ("What do birds build?", "Many birds build nests.")]),
    ("fish", "a fish", "an animal that lives in water and breathes with gills", [
        ("How does a fish swim?", "A fish swims by moving its tail and fins.")]),
    ("elephant", "an elephant", "the largest animal that lives on land, with a long trunk and big ears", [
        ("What does an elephant use its trunk for?", "An elephant uses its trunk to drink and to pick up food."),
        ("Do elephants forget?", "Elephants have a very good memory.")]),
    ("lion", "a lion", "a large wild cat that lives in Africa and hunts in groups", [
        ("What is a group of lions called?", "A group of lions is called a pride.")]),
    ("bee", "a bee", "a small flying insect that makes honey", [
        ("What do bees make?", "Bees make honey and wax."),
        ("Where do bees live?", "Bees live together in a hive.")]),
    ("owl", "an owl", "a bird that hunts at night and has large eyes", [
        ("When are owls awake?", "Owls are awake at night.")]),
    ("whale", "a whale", "a very large animal that lives in the ocean and breathes air", [
        ("What is the largest animal?", "The blue whale is the largest animal on Earth.")]),
    ("frog", "a frog", "a small animal that lives near water and jumps with its long back legs", [
        ("What is a baby frog called?", "A baby frog is called a tadpole.")]),
    ("spider", "a spider", "a small animal with eight legs that spins webs", [
        ("How many legs does a spider have?", "A spider has eight legs.")]),
]

COUNTRIES = [
    ("France", "France", "a country in Western Europe whose capital is Paris", [
        ("What is the capital of France?", "The capital of France is Paris."),
        ("What language do people speak in France?", "People in France speak French.")]),
    ("Japan", "Japan", "an island country in East Asia whose capital is Tokyo", [
        ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
        ("What language do people speak in Japan?", "People in Japan speak Japanese.")]),
    ("Brazil", "Brazil", "the largest country in South America, whose capital is Brasilia", [
        ("What is the capital of Brazil?", "The capital of Brazil is Brasilia."),
        ("What language do people speak in Brazil?", "People in Brazil speak Portuguese.")]),
    ("Egypt", "Egypt", "a country in North Africa whose capital is Cairo", [
        ("What is the capital of Egypt?", "The capital of Egypt is Cairo."),
        ("Which river flows through Egypt?", "The Nile flows through Egypt.")]),
    ("Canada", "Canada", "a large country in North America whose capital is Ottawa", [
        ("What is the capital of Canada?", "The capital of Canada is Ottawa."),
        ("What languages do people speak in Canada?", "People in Canada speak English and French.")]),
    ("India", "India", "a large country in South Asia whose capital is New Delhi", [
        ("What is the capital of India?", "The capital of India is New Delhi.")]),
    ("Italy", "Italy", "a country in Southern Europe whose capital is Rome", [
        ("What is the capital of Italy?", "The capital of Italy is Rome."),
        ("What language do people speak in Italy?", "People in Italy speak Italian.")]),
    ("Kenya", "Kenya", "a country in East Africa whose capital is Nairobi", [
        ("What is the capital of Kenya?", "The capital of Kenya is Nairobi.")]),
    ("Australia", "Australia", "a country that is also a continent, whose capital is Canberra", [
        ("What is the capital of Australia?", "The capital of Australia is Canberra."),
        ("Which animal is famous in Australia?", "The kangaroo is a famous animal of Australia.")]),
    ("Germany", "Germany", "a country in Central Europe whose capital is Berlin", [
        ("What is the capital of Germany?", "The capital of Germany is Berlin."),
        ("What language do people speak in Germany?", "People in Germany speak German.")]),
]

COLORS = [
    ("red", "red", "the color of blood and of ripe strawberries", [
        ("What does a red traffic light mean?", "A red traffic light means stop.")]),
    ("blue", "blue", "the color of the clear sky and of the deep sea", [
        ("What color is the sky?", "The sky is blue on a clear day.")]),
    ("green", "green", "the color of grass and of leaves", [
        ("What do you get when you mix blue and yellow?", "Mixing blue and yellow makes green.")]),
    ("yellow", "yellow", "the color of the sun and of ripe bananas", [
        ("What color is a banana?", "A ripe banana is yellow.")]),
    ("white", "white", "the color of snow and of milk", [
        ("What color is snow?", "Snow is white.")]),
    ("black", "black", "the darkest color, the color of the night sky", [
        ("What color is coal?", "Coal is black.")]),
    ("orange", "orange", "the color between red and yellow, like the fruit with the same name", [
        ("What do you get when you mix red and yellow?", "Mixing red and yellow makes orange.")]),
]

NATURE = [
    ("sun", "the sun", "the star at the center of our solar system", [
        ("Where does the sun rise?", "The sun rises in the east and sets in the west."),
        ("What does the sun give us?", "The sun gives us light and heat.")]),
    ("moon", "the moon", "the natural satellite that goes around the Earth", [
        ("How long does the moon take to go around the Earth?", "The moon goes around the Earth about once a month.")]),
    ("Earth", "the Earth", "the planet where we live, the third planet from the sun", [
        ("How long does the Earth take to go around the sun?", "The Earth goes around the sun once a year.")]),
    ("water", "water", "a clear liquid that all living things need", [
        ("At what temperature does water freeze?", "Water freezes at 0 degrees Celsius."),
        ("At what temperature does water boil?", "Water boils at 100 degrees Celsius.")]),
    ("rain", "rain", "water that falls from clouds in drops", [
        ("Where does rain come from?", "Rain comes from clouds.")]),
    ("snow", "snow", "frozen water that falls from clouds as soft white flakes", [
        ("When does it snow?", "It snows when the air is colder than 0 degrees Celsius.")]),
    ("tree", "a tree", "a tall plant with a wooden trunk, branches and leaves", [
        ("What do trees give us?", "Trees give us wood, fruit and shade.")]),
    ("ocean", "the ocean", "a very large body of salt water", [
        ("What is the largest ocean?", "The Pacific is the largest ocean.")]),
]
