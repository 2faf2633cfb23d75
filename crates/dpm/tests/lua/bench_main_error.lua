local n = 1
print(n + nil)
