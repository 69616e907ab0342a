"""Facts about computing and machine learning: (name, article form, definition, [(question, answer), ...]).

The definition completes "<Article form> is ...": the SFT answer to "What is an LLM?" is
"An LLM is <definition>." Each fact answer is one declarative sentence that the pretraining corpus
contains verbatim; its question is asked only in the SFT data.
"""

TECH = [
    ("LLM", "an LLM", "a large language model: a neural network trained to predict the next token of text", [
        ("What does LLM stand for?", "LLM stands for large language model."),
        ("How does an LLM write text?", "An LLM writes text one token at a time."),
        ("What is an LLM trained on?", "LLMs are trained on a large amount of text.")]),
    ("token", "a token", "a small piece of text, such as a word or part of a word, that a language model reads and writes", [
        ("How many tokens can a word have?", "A word can be one token or several tokens."),
        ("What does a language model predict?", "A language model predicts the next token.")]),
    ("tokenizer", "a tokenizer", "a program that splits text into tokens and turns each token into a number", [
        ("What does a tokenizer produce?", "A tokenizer turns text into a list of token ids."),
        ("When is a tokenizer trained?", "A tokenizer is trained before the model, on the same kind of text.")]),
    ("transformer", "a transformer", "a neural network design that uses attention to read a whole sequence of tokens", [
        ("What are most LLMs built from?", "Most LLMs are built from transformer layers."),
        ("When was the transformer introduced?", "The transformer was introduced in 2017.")]),
    ("attention", "attention", "a mechanism that lets each token look at the other tokens and decide which ones matter", [
        ("Where is attention used?", "Attention is the core part of a transformer."),
        ("What does an attention head compute?", "An attention head computes a weighted average of the other tokens.")]),
    ("neural network", "a neural network", "a model made of layers of simple units whose weights are learned from data", [
        ("How does a neural network learn?", "A neural network learns by changing its weights to make the loss smaller."),
        ("What is a neural network made of?", "A neural network is made of layers.")]),
    ("GPU", "a GPU", "a graphics processing unit: a chip that does many simple calculations at the same time", [
        ("What does GPU stand for?", "GPU stands for graphics processing unit."),
        ("Why are GPUs used for training?", "GPUs make the training of neural networks much faster.")]),
    ("CPU", "a CPU", "a central processing unit: the main chip of a computer that runs programs", [
        ("What does CPU stand for?", "CPU stands for central processing unit."),
        ("Can a CPU train a model?", "A CPU can train a small model, but more slowly than a GPU.")]),
    ("Ray", "Ray", "an open source framework for running Python programs on many computers at once", [
        ("What is a Ray actor?", "A Ray actor is a Python object that runs in its own process."),
        ("What is Ray used for?", "Ray is used to scale machine learning across a cluster.")]),
    ("Python", "Python", "a popular programming language that is easy to read and write", [
        ("Who created Python?", "Python was created by Guido van Rossum."),
        ("What is Python used for?", "Python is widely used for machine learning.")]),
    ("PyTorch", "PyTorch", "a Python library for building and training neural networks", [
        ("What does PyTorch compute for you?", "PyTorch computes gradients automatically."),
        ("What is a tensor in PyTorch?", "A tensor in PyTorch is an array of numbers.")]),
    ("reinforcement learning", "reinforcement learning", "a way of training a model by giving it rewards for good actions", [
        ("What does RL stand for?", "RL stands for reinforcement learning."),
        ("What does an agent want in reinforcement learning?",
         "In reinforcement learning, an agent tries to collect as much reward as possible.")]),
    ("reward model", "a reward model", "a model that gives a score to a response to show how good it is", [
        ("How is a reward model trained?", "A reward model is trained on pairs of responses ranked by people."),
        ("What does a reward model output?", "A reward model outputs one number for each response.")]),
    ("reward", "a reward", "a number that tells a model how good its action or answer was", [
        ("What does a high reward mean?", "A high reward means that the answer was good."),
        ("Where does a reward come from?", "A reward comes from a verifier or a reward model.")]),
    ("policy", "a policy", "the rule that a model uses to choose its actions; for an LLM, the policy is the model itself", [
        ("What does a policy do?", "A policy chooses what to do next."),
        ("How is a policy improved?", "A policy is improved by training it on its rewards.")]),
    ("GRPO", "GRPO", "group relative policy optimization: a reinforcement learning method that compares several answers to the same prompt", [
        ("What does GRPO stand for?", "GRPO stands for group relative policy optimization."),
        ("Does GRPO need a value model?", "GRPO does not need a value model.")]),
    ("PPO", "PPO", "proximal policy optimization: a reinforcement learning method that keeps each update small", [
        ("What does PPO stand for?", "PPO stands for proximal policy optimization."),
        ("What does PPO use to judge an action?", "PPO uses a value model to judge each action.")]),
    ("SFT", "SFT", "supervised fine-tuning: training a model on examples of prompts and good responses", [
        ("What does SFT stand for?", "SFT stands for supervised fine-tuning."),
        ("When does SFT happen?", "SFT usually happens after pretraining.")]),
    ("pretraining", "pretraining", "the first stage of training, where a model learns to predict text from a large corpus", [
        ("What does a model learn in pretraining?", "In pretraining, a model learns grammar and facts from text."),
        ("Which stage comes first?", "Pretraining comes first, then SFT, then reinforcement learning.")]),
    ("gradient", "a gradient", "a list of numbers that shows how the loss changes when each weight changes", [
        ("How is the gradient computed?", "The gradient is computed with backpropagation."),
        ("Where does the gradient point?", "The gradient points in the direction in which the loss grows fastest.")]),
    ("gradient descent", "gradient descent", "a method that lowers the loss by moving the weights a small step against the gradient", [
        ("What does gradient descent repeat?", "Gradient descent repeats small steps until the loss stops falling.")]),
    ("loss", "a loss", "a number that measures how wrong the predictions of a model are", [
        ("What is the goal of training?", "The goal of training is to make the loss small."),
        ("Which loss does a language model use?", "A language model uses the cross entropy loss.")]),
    ("learning rate", "the learning rate", "the size of each step that a model takes when it updates its weights", [
        ("What happens if the learning rate is too high?", "If the learning rate is too high, training becomes unstable."),
        ("What happens if the learning rate is too low?", "If the learning rate is too low, training is very slow.")]),
    ("embedding", "an embedding", "a list of numbers that represents a token or a piece of text", [
        ("What do similar words have in common?", "Similar words have similar embeddings.")]),
    ("vocabulary", "the vocabulary", "the set of all tokens that a tokenizer knows", [
        ("How big is the vocabulary of a large model?", "The vocabulary of a large model has tens of thousands of tokens.")]),
    ("dataset", "a dataset", "a collection of examples used to train or test a model", [
        ("Why keep a held out set?", "A held out set shows how well a model does on data it has not seen.")]),
    ("parameter", "a parameter", "a number inside a model that is learned during training", [
        ("How many parameters can a large model have?", "A large model can have billions of parameters."),
        ("What is another word for parameters?", "Parameters are also called weights.")]),
    ("checkpoint", "a checkpoint", "a saved copy of the weights of a model during training", [
        ("Why save checkpoints?", "Checkpoints let training resume after a crash.")]),
    ("prompt", "a prompt", "the text given to a language model to start its answer", [
        ("What does a model do with a prompt?", "A model reads the prompt and writes a completion.")]),
    ("inference", "inference", "using a trained model to make predictions or to generate text", [
        ("Is inference faster than training?", "Inference is much cheaper than training.")]),
    ("vLLM", "vLLM", "a fast library for serving language models and generating text on GPUs", [
        ("How does vLLM save memory?", "vLLM saves memory by storing the attention cache in pages.")]),
    ("cluster", "a cluster", "a group of computers that work together on one job", [
        ("What is a node?", "A node is one computer in a cluster.")]),
    ("batch", "a batch", "a group of examples that are processed together in one training step", [
        ("Why use batches?", "Batches make training faster and the gradient less noisy.")]),
    ("overfitting", "overfitting", "what happens when a model memorizes its training data and does badly on new data", [
        ("How can you spot overfitting?", "Overfitting shows up as a low training loss and a high held out loss.")]),
    ("computer", "a computer", "a machine that runs programs to store and process information", [
        ("What is the brain of a computer?", "The CPU is the brain of a computer.")]),
    ("algorithm", "an algorithm", "a list of steps that solves a problem", [
        ("Who follows an algorithm?", "A computer follows an algorithm step by step.")]),
    ("function", "a function", "a named block of code that takes inputs and returns an output", [
        ("How do you define a function in Python?", "In Python, you define a function with the def keyword."),
        ("How does a function give back a value?", "A function gives back a value with the return keyword.")]),
    ("machine learning", "machine learning", "a way of building programs that learn patterns from data instead of following fixed rules", [
        ("What does a machine learning model need?", "A machine learning model needs data to learn from.")]),
    ("language model", "a language model", "a model that gives a probability to each possible next token", [
        ("How does a language model generate text?", "A language model generates text by sampling one token after another.")]),
    ("chatbot", "a chatbot", "a program that talks with people in natural language", [
        ("What is a chatbot built on today?", "Most chatbots today are built on an LLM.")]),
    ("verifier", "a verifier", "a program that checks an answer and gives it a reward, for example by running tests", [
        ("How does a code verifier work?", "A code verifier runs the code against tests."),
        ("How does a math verifier work?", "A math verifier compares the final answer with the reference answer.")]),
]
