using System.Reflection;

namespace NetStream.Tests.PublicApi;

/// <summary>Type names as C# spells them: keywords, namespaces, <c>List&lt;T&gt;</c> rather than <c>List`1</c>, <c>?</c> where nullable.</summary>
internal static class TypeNames
{
    private static readonly Dictionary<Type, string> Keywords = new()
    {
        [typeof(void)] = "void", [typeof(object)] = "object", [typeof(string)] = "string", [typeof(bool)] = "bool",
        [typeof(char)] = "char", [typeof(byte)] = "byte", [typeof(sbyte)] = "sbyte", [typeof(short)] = "short",
        [typeof(ushort)] = "ushort", [typeof(int)] = "int", [typeof(uint)] = "uint", [typeof(long)] = "long",
        [typeof(ulong)] = "ulong", [typeof(float)] = "float", [typeof(double)] = "double", [typeof(decimal)] = "decimal",
        [typeof(nint)] = "nint", [typeof(nuint)] = "nuint",
    };

    /// <summary>The name a type's own line starts with, with its generic parameters.</summary>
    public static string Declaration(Type type) => Of(type);

    /// <summary>The name without namespace, declaring types or arity: what a constructor is called.</summary>
    public static string Simple(Type type) => StripArity(type.Name);

    /// <param name="type">The type.</param>
    /// <param name="nullability">Its nullability where it is known (parameters, returns, properties, fields, events).</param>
    public static string Of(Type type, NullabilityInfo? nullability = null)
    {
        if (type.IsByRef)
        {
            return Of(type.GetElementType()!, nullability);
        }

        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            return Of(underlying, nullability?.GenericTypeArguments.FirstOrDefault()) + "?";
        }

        var mark = !type.IsValueType && IsNullable(nullability) ? "?" : "";
        if (type.IsArray)
        {
            var rank = new string(',', type.GetArrayRank() - 1);
            return $"{Of(type.GetElementType()!, nullability?.ElementType)}[{rank}]{mark}";
        }

        if (type.IsPointer)
        {
            return Of(type.GetElementType()!) + "*";
        }

        if (type.IsGenericParameter)
        {
            return type.Name + mark;
        }

        if (Keywords.TryGetValue(type, out var keyword))
        {
            return keyword + mark;
        }

        return Named(type, nullability) + mark;
    }

    /// <summary>The <c>where</c> clause of one generic parameter, or nothing.</summary>
    public static string Constraints(Type parameter)
    {
        var attributes = parameter.GenericParameterAttributes;
        var constraints = new List<string>();
        var isStruct = attributes.HasFlag(GenericParameterAttributes.NotNullableValueTypeConstraint);
        if (isStruct)
        {
            constraints.Add("struct");
        }
        else if (attributes.HasFlag(GenericParameterAttributes.ReferenceTypeConstraint))
        {
            constraints.Add("class");
        }

        constraints.AddRange(parameter.GetGenericParameterConstraints()
            .Where(c => c != typeof(ValueType))
            .Select(c => Of(c))
            .Order(StringComparer.Ordinal));
        if (!isStruct && attributes.HasFlag(GenericParameterAttributes.DefaultConstructorConstraint))
        {
            constraints.Add("new()");
        }

        return constraints.Count == 0 ? "" : $" where {parameter.Name} : {string.Join(", ", constraints)}";
    }

    private static bool IsNullable(NullabilityInfo? nullability) =>
        nullability is not null
        && (nullability.ReadState == NullabilityState.Nullable
            || (nullability.ReadState == NullabilityState.Unknown && nullability.WriteState == NullabilityState.Nullable));

    // Namespace, then each declaring type with its share of the generic arguments (Outer<T>.Inner<U>).
    private static string Named(Type type, NullabilityInfo? nullability)
    {
        var arguments = type.GetGenericArguments();
        var argumentNullability = nullability?.GenericTypeArguments;
        var chain = new List<Type>();
        for (var t = type; t is not null; t = t.DeclaringType)
        {
            chain.Insert(0, t);
        }

        var used = 0;
        var parts = chain.Select(t =>
        {
            var arity = t.GetGenericArguments().Length - used;
            var name = StripArity(t.Name);
            if (arity <= 0)
            {
                return name;
            }

            var names = Enumerable.Range(used, arity).Select(i => Of(
                arguments[i],
                argumentNullability is { Length: var n } && n == arguments.Length ? argumentNullability[i] : null));
            used += arity;
            return $"{name}<{string.Join(", ", names)}>";
        });
        var path = string.Join(".", parts);
        return string.IsNullOrEmpty(type.Namespace) ? path : $"{type.Namespace}.{path}";
    }

    private static string StripArity(string name)
    {
        var tick = name.IndexOf('`', StringComparison.Ordinal);
        return tick < 0 ? name : name[..tick];
    }
}
