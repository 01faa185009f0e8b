"""Thin listeners: ack, parse into plain values, call one service, render the result."""
