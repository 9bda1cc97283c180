"""The brief's QA cases 1-8, automated and recorded: ``python -m qa.run`` (``make qa``)."""
