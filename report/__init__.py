"""The activity report (issue 6): what a sales manager builds by hand, computed from stored events.

`figures` computes from plain values, `load` reads them from the store, `render` writes the forms.
"""
